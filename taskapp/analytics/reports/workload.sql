-- Workload per assignee: the open (not done) tasks in scope per person (the owner when nobody is
-- assigned), by status, with how many are overdue today; the most loaded first.
SELECT coalesce(assignee_email, owner_email) AS assignee,
       count_if(status = 'TODO') AS todo,
       count_if(status = 'IN_PROGRESS') AS in_progress,
       count_if(coalesce(due_date < CAST(:today AS date), false)) AS overdue,  -- DuckDB's count_if of only NULLs is NULL
       count(*) AS open_tasks
FROM task_snapshots
WHERE dt = :snapshot_dt
  AND (CAST(:all_tasks AS boolean) OR owner_sub = :user_sub OR assignee_sub = :user_sub)
  AND status <> 'DONE'
GROUP BY coalesce(assignee_email, owner_email)
ORDER BY open_tasks DESC, assignee
