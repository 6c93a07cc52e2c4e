-- Lead time (created -> done) and cycle time (first moved to IN_PROGRESS -> done), in days, of the
-- tasks in scope completed from from_day to to_day, as p50 / p85 / p95. A percentile is the
-- nearest rank: the smallest duration that at least that share of the tasks did not exceed.
-- Tasks that went straight to DONE have a lead time but no cycle time.
WITH done AS (
    SELECT task_id, created_at, completed_at
    FROM task_snapshots
    WHERE dt = :snapshot_dt
      AND (CAST(:all_tasks AS boolean) OR owner_sub = :user_sub OR assignee_sub = :user_sub)
      AND status = 'DONE'
      AND CAST(completed_at AS date) BETWEEN CAST(:from_day AS date) AND CAST(:to_day AS date)
),
started AS (
    SELECT e.task_id, min(e.changed_at) AS started_at
    FROM task_events AS e
    JOIN done AS d ON d.task_id = e.task_id
    WHERE e.dt <= :to_day AND e.to_status = 'IN_PROGRESS'
    GROUP BY e.task_id
),
durations AS (
    SELECT 'lead_time' AS measure, CAST(date_diff('second', created_at, completed_at) AS double) / 86400 AS days
    FROM done
    UNION ALL
    SELECT 'cycle_time', CAST(date_diff('second', s.started_at, d.completed_at) AS double) / 86400
    FROM done AS d
    JOIN started AS s ON s.task_id = d.task_id
),
ranked AS (
    SELECT measure, days,
           row_number() OVER (PARTITION BY measure ORDER BY days) AS nth,
           count(*) OVER (PARTITION BY measure) AS n
    FROM durations
),
measures AS (
    SELECT * FROM (VALUES (1, 'lead_time'), (2, 'cycle_time')) AS v (position, measure)
)
SELECT m.measure,
       count(r.days) AS tasks,
       round(min(CASE WHEN r.nth * 100 >= 50 * r.n THEN r.days END), 2) AS p50_days,
       round(min(CASE WHEN r.nth * 100 >= 85 * r.n THEN r.days END), 2) AS p85_days,
       round(min(CASE WHEN r.nth * 100 >= 95 * r.n THEN r.days END), 2) AS p95_days
FROM measures AS m
LEFT JOIN ranked AS r ON r.measure = m.measure
GROUP BY m.measure, m.position
ORDER BY m.position
