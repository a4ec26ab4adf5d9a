-- top_failing: per domain, the ${top_k} utterances (trimmed, lower-cased: texts.sql) with
-- the most defective turns — the raw material of the next training set. top_intent is the model's
-- best guess (the first alphabetically when model versions disagree). Turns are counted per
-- exact text first (by its id in texts.sql), whose utterance is lower-cased once per
-- distinct text, not once per turn.
WITH per_text AS (
  SELECT
    domain,
    text_id,
    MIN(top_intent) AS top_intent,
    COUNT(*) AS turns,
    SUM(defect) AS defects,
    SUM(not_recognized) AS not_recognized,
    SUM(low_confidence) AS low_confidence,
    SUM(rephrased) AS rephrased,
    SUM(negative_feedback) AS negative_feedback
  FROM turn_facts
  GROUP BY domain, text_id
),
utterances AS (
  SELECT
    domain,
    x.utterance,
    MIN(top_intent) AS top_intent,
    CAST(SUM(turns) AS BIGINT) AS turns,
    CAST(SUM(defects) AS BIGINT) AS defects,
    CAST(SUM(not_recognized) AS BIGINT) AS not_recognized,
    CAST(SUM(low_confidence) AS BIGINT) AS low_confidence,
    CAST(SUM(rephrased) AS BIGINT) AS rephrased,
    CAST(SUM(negative_feedback) AS BIGINT) AS negative_feedback
  FROM per_text p
  LEFT JOIN texts x ON x.id = p.text_id
  GROUP BY domain, x.utterance
),
ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY domain ORDER BY defects DESC, turns DESC, utterance) AS rank
  FROM utterances
  WHERE defects > 0
)
SELECT domain, rank, utterance, top_intent, turns, defects, not_recognized, low_confidence,
       rephrased, negative_feedback
FROM ranked
WHERE rank <= ${top_k}
ORDER BY domain, rank
