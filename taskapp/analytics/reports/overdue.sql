-- Overdue tasks: the tasks in scope that are not done and were due before today, longest overdue first.
SELECT task_id, title, status, priority, due_date,
       date_diff('day', due_date, CAST(:today AS date)) AS days_overdue,
       owner_email, assignee_email
FROM task_snapshots
WHERE dt = :snapshot_dt
  AND (CAST(:all_tasks AS boolean) OR owner_sub = :user_sub OR assignee_sub = :user_sub)
  AND status <> 'DONE'
  AND due_date < CAST(:today AS date)
ORDER BY due_date, title, task_id
