-- Weekly throughput: how many tasks in scope were completed in each week (Monday to Sunday)
-- from the week of from_day to the week of to_day (whole weeks). A task counts in the week it was
-- last moved to DONE, if it is still done.
WITH done AS (
    SELECT task_id, CAST(completed_at AS date) AS completed_day
    FROM task_snapshots
    WHERE dt = :snapshot_dt
      AND (CAST(:all_tasks AS boolean) OR owner_sub = :user_sub OR assignee_sub = :user_sub)
      AND status = 'DONE'
      AND CAST(completed_at AS date) >= CAST(date_trunc('week', CAST(:from_day AS date)) AS date)
      AND CAST(completed_at AS date) < CAST(date_trunc('week', CAST(:to_day AS date)) AS date) + INTERVAL '7' DAY
),
weeks AS (
    SELECT CAST(week AS date) AS week
    FROM UNNEST(sequence(CAST(date_trunc('week', CAST(:from_day AS date)) AS date),
                         CAST(:to_day AS date), INTERVAL '7' DAY)) AS t (week)
)
SELECT w.week AS week_start, count(d.task_id) AS completed
FROM weeks AS w
LEFT JOIN done AS d ON CAST(date_trunc('week', d.completed_day) AS date) = w.week
GROUP BY w.week
ORDER BY w.week
