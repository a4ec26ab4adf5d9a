-- arm_users: one row per user and experiment arm with per-user counts — the per-user table
-- that voxloop.experiments.aggregate.sufficient_statistics_sql reduces to per-arm
-- statistics (defects / turns is a ratio metric: numerator defects, denominator turns).
SELECT
  experiment,
  arm,
  user_id,
  COUNT(*) AS turns,
  CAST(SUM(defect) AS BIGINT) AS defects,
  CAST(SUM(not_recognized) AS BIGINT) AS not_recognized,
  CAST(SUM(rephrased) AS BIGINT) AS rephrased,
  CAST(SUM(barge_in) AS BIGINT) AS barge_ins,
  CAST(SUM(abandoned) AS BIGINT) AS abandonments,
  CAST(SUM(negative_feedback) AS BIGINT) AS negative_feedback,
  MAX(defect) AS had_defect
FROM turn_facts
WHERE experiment <> '(none)' AND user_id IS NOT NULL
GROUP BY experiment, arm, user_id
