-- arms: every rate per experiment arm (turns with no experiment left out), for a quick look;
-- the experiment analysis itself starts from the per-user table of arm_users.sql.
SELECT
  experiment,
  arm,
  COUNT(DISTINCT user_id) AS users,
  COUNT(*) AS turns,
  MIN(model_version) AS model_version,
  AVG(latency_ms) AS mean_latency_ms,
  ${rates}
FROM turn_facts
WHERE experiment <> '(none)'
GROUP BY experiment, arm
ORDER BY experiment, arm
