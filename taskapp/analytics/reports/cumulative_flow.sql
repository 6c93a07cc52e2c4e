-- Cumulative flow: how many of the tasks in scope were in each status at the end of each day
-- from from_day to to_day. A task's status on a day is the last change it had on or before
-- that day (status changes come from each task's history). Deleted tasks are left out.
WITH scoped AS (
    SELECT task_id
    FROM task_snapshots
    WHERE dt = :snapshot_dt
      AND (CAST(:all_tasks AS boolean) OR owner_sub = :user_sub OR assignee_sub = :user_sub)
),
last_change_of_day AS (
    SELECT e.task_id, CAST(e.dt AS date) AS day, e.to_status,
           row_number() OVER (PARTITION BY e.task_id, e.dt ORDER BY e.changed_at DESC, e.seq DESC) AS nth
    FROM task_events AS e
    JOIN scoped AS s ON s.task_id = e.task_id
    WHERE e.dt <= :to_day
),
spans AS (
    SELECT to_status AS status, day AS since, lead(day) OVER (PARTITION BY task_id ORDER BY day) AS until
    FROM last_change_of_day
    WHERE nth = 1
),
days AS (
    SELECT CAST(day AS date) AS day
    FROM UNNEST(sequence(CAST(:from_day AS date), CAST(:to_day AS date), INTERVAL '1' DAY)) AS t (day)
),
statuses AS (
    SELECT * FROM (VALUES (1, 'TODO'), (2, 'IN_PROGRESS'), (3, 'DONE')) AS v (position, status)
)
SELECT d.day, st.status, count(sp.status) AS tasks
FROM days AS d
CROSS JOIN statuses AS st
LEFT JOIN spans AS sp
    ON sp.status = st.status AND sp.since <= d.day AND (sp.until IS NULL OR sp.until > d.day)
GROUP BY d.day, st.status, st.position
ORDER BY d.day, st.position
