-- turn_facts: one row per turn with every signal the KPIs count, each 0 or 1.
-- Computed once per run (materialised); every KPI below is a GROUP BY over it.
--
-- not_recognized  the parser declined to answer (intent IS NULL)
-- low_confidence  the top intent's confidence < ${low_confidence} (recognized or not)
-- rephrased       the same user spoke again within ${window_s} s, and the two texts share
--                 at least ${similarity} of their character trigrams (Jaccard similarity of
--                 the sets of trigrams of the lower-cased texts padded with one space each
--                 side, on their first ${max_chars} characters); or the client reported a
--                 rephrase of the turn in the feedback. The flag is on the turn that was
--                 rephrased (the failed one), not on the rephrase.
-- barge_in, abandoned, negative_feedback  from the feedback (see turns_with_feedback.sql)
-- defect          not_recognized OR rephrased OR barge_in OR abandoned OR negative_feedback
--
-- Trigrams without a UDF: _trigram_positions holds (len, i) for every start position i
-- of a trigram in a string of length len, so an equi-join on len = LENGTH(text) explodes
-- a text into SUBSTRING(text, i, 3) for i = 1 .. len - 2, in DuckDB and Spark alike.
WITH seq AS (
  SELECT
    turn_id,
    ts_us,
    text,
    LEAD(ts_us) OVER (PARTITION BY user_id ORDER BY ts_us, turn_id) AS next_ts_us,
    LEAD(text) OVER (PARTITION BY user_id ORDER BY ts_us, turn_id) AS next_text
  FROM turns
  WHERE user_id IS NOT NULL
),
pairs AS (
  SELECT
    turn_id,
    next_ts_us - ts_us AS gap_us,
    next_text,
    SUBSTRING(CONCAT(' ', LOWER(text), ' '), 1, ${max_chars}) AS a,
    SUBSTRING(CONCAT(' ', LOWER(next_text), ' '), 1, ${max_chars}) AS b
  FROM seq
  WHERE next_ts_us IS NOT NULL AND next_ts_us - ts_us <= ${window_us}
),
grams_a AS (
  SELECT DISTINCT p.turn_id, SUBSTRING(p.a, g.i, 3) AS gram
  FROM pairs p JOIN _trigram_positions g ON g.len = LENGTH(p.a)
),
grams_b AS (
  SELECT DISTINCT p.turn_id, SUBSTRING(p.b, g.i, 3) AS gram
  FROM pairs p JOIN _trigram_positions g ON g.len = LENGTH(p.b)
),
size_a AS (SELECT turn_id, COUNT(*) AS n FROM grams_a GROUP BY turn_id),
size_b AS (SELECT turn_id, COUNT(*) AS n FROM grams_b GROUP BY turn_id),
shared AS (
  SELECT a.turn_id, COUNT(*) AS n
  FROM grams_a a JOIN grams_b b ON a.turn_id = b.turn_id AND a.gram = b.gram
  GROUP BY a.turn_id
),
similarity AS (
  SELECT
    p.turn_id,
    p.gap_us,
    p.next_text,
    CAST(COALESCE(s.n, 0) AS DOUBLE)
      / NULLIF(COALESCE(sa.n, 0) + COALESCE(sb.n, 0) - COALESCE(s.n, 0), 0) AS similarity
  FROM pairs p
  LEFT JOIN size_a sa ON sa.turn_id = p.turn_id
  LEFT JOIN size_b sb ON sb.turn_id = p.turn_id
  LEFT JOIN shared s ON s.turn_id = p.turn_id
),
flagged AS (
  SELECT
    t.*,
    s.similarity AS next_similarity,
    s.next_text AS next_text,
    CAST(s.gap_us AS DOUBLE) / 1000000 AS next_gap_s,
    CASE WHEN t.intent IS NULL THEN 1 ELSE 0 END AS not_recognized,
    CASE WHEN t.confidence < ${low_confidence} THEN 1 ELSE 0 END AS low_confidence,
    CASE WHEN s.similarity >= ${similarity} OR t.rephrase_reported = 1 THEN 1 ELSE 0 END
      AS rephrased
  FROM turns_with_feedback t
  LEFT JOIN similarity s ON s.turn_id = t.turn_id
)
SELECT
  turn_id,
  day,
  ts_us,
  user_id,
  session_id,
  text,
  COALESCE(locale, '(none)') AS locale,
  COALESCE(domain, '(none)') AS domain,
  COALESCE(intent, '(not recognized)') AS intent,
  COALESCE(top_intent, '(none)') AS top_intent,
  COALESCE(second_intent, '(none)') AS second_intent,
  confidence,
  model_version,
  COALESCE(experiment, '(none)') AS experiment,
  COALESCE(arm, '(none)') AS arm,
  COALESCE(channel, '(none)') AS channel,
  latency_ms,
  not_recognized,
  low_confidence,
  rephrased,
  barge_in,
  abandoned,
  negative_feedback,
  rating,
  task_success,
  CASE WHEN not_recognized = 1 OR rephrased = 1 OR barge_in = 1 OR abandoned = 1
            OR negative_feedback = 1 THEN 1 ELSE 0 END AS defect,
  next_text,
  next_similarity,
  next_gap_s
FROM flagged
