-- summary: the whole range in one row.
SELECT
  COUNT(*) AS turns,
  COUNT(DISTINCT user_id) AS users,
  COUNT(DISTINCT session_id) AS sessions,
  COUNT(DISTINCT day) AS days,
  ${rates}
FROM turn_facts
