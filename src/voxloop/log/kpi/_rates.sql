-- The rates every slice reports (a fragment, included as ${rates}).
  CAST(COALESCE(SUM(defect), 0) AS BIGINT) AS defects,
  CAST(SUM(defect) AS DOUBLE) / NULLIF(COUNT(*), 0) AS defect_rate,
  CAST(SUM(not_recognized) AS DOUBLE) / NULLIF(COUNT(*), 0) AS not_recognized_rate,
  CAST(SUM(low_confidence) AS DOUBLE) / NULLIF(COUNT(*), 0) AS low_confidence_rate,
  CAST(SUM(rephrased) AS DOUBLE) / NULLIF(COUNT(*), 0) AS rephrase_rate,
  CAST(SUM(barge_in) AS DOUBLE) / NULLIF(COUNT(*), 0) AS barge_in_rate,
  CAST(SUM(abandoned) AS DOUBLE) / NULLIF(COUNT(*), 0) AS abandonment_rate,
  CAST(SUM(negative_feedback) AS DOUBLE) / NULLIF(COUNT(*), 0) AS negative_feedback_rate
