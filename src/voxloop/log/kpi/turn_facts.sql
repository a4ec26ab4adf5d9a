-- turn_facts: one row per turn with every signal the KPIs count, each 0 or 1.
-- Computed once per run (materialised); every KPI below is a GROUP BY over it.
--
-- not_recognized  the parser declined to answer (intent IS NULL)
-- low_confidence  the top intent's confidence < ${low_confidence} (recognized or not)
-- rephrased       the same user spoke again within ${window_s} s, and the two texts share
--                 at least ${similarity} of their character trigrams (Jaccard similarity of
--                 the sets of trigrams of the texts lower-cased as texts.sql says, padded
--                 with one space each side, on their first ${max_chars} characters); or it
--                 came within ${quick_s} s after a turn the parser declined or was unsure
--                 of (low_confidence) and shares at least ${quick_similarity} of the
--                 trigrams (a quick retry: a paraphrase shares few characters); or the
--                 client reported a rephrase of the turn in the feedback. The flag is on
--                 the turn that was rephrased (the failed one), not on the rephrase.
-- barge_in, abandoned, negative_feedback  from the feedback (see turns_with_feedback.sql)
-- defect          not_recognized OR rephrased OR barge_in OR abandoned OR negative_feedback
--
-- Candidates (rephrase_candidates.sql, materialised first, after texts.sql): turns whose
-- same user spoke again within ${window_s} s, with the integer ids of both texts.
-- Texts stay ids here too (text_id, next_text_id: ids in texts.sql; NULL for a turn
-- without text or without a candidate next turn): the two KPIs that show text
-- (top_failing, friction_examples) join texts for their few rows, and writing ten
-- million strings twice into this table cost a tenth of its build.
--
-- Trigrams without a UDF: _trigram_positions holds (len, i) for every start position i
-- of a trigram in a string of length len, so an equi-join on len = LENGTH(s) explodes
-- a text into SUBSTRING(s, i, 3) for i = 1 .. len - 2, in DuckDB and Spark alike.
-- Similarity is computed once per DISTINCT pair of texts of the candidates (unordered:
-- Jaccard is symmetric, so "a then b" and "b then a" share one), not once per turn:
-- assistant traffic repeats the same utterances, so distinct pairs are far fewer than
-- candidate turns (10M turns: 5.36M candidates, 2.53M pairs). Trigrams get integer ids
-- too (every later join and group key is an integer, never a text).
-- |A n B| counts the trigrams of text a found among those of text b: each (text, trigram)
-- is one BIGINT key (text id * 2^32 + trigram id), so the lookup is a two-way equi-join
-- that no planner can reorder into a trigram-to-trigram join across all texts (which
-- explodes), and no large COUNT(DISTINCT) is needed.
WITH text_pairs AS (
  SELECT DISTINCT LEAST(a_id, b_id) AS a_id, GREATEST(a_id, b_id) AS b_id
  FROM rephrase_candidates
),
text_grams AS (
  SELECT DISTINCT t.id, SUBSTRING(t.s, g.i, 3) AS gram
  FROM texts t JOIN _trigram_positions g ON g.len = LENGTH(t.s)
),
gram_ids AS (
  SELECT gram, DENSE_RANK() OVER (ORDER BY gram) AS gram_id
  FROM (SELECT DISTINCT gram FROM text_grams) d
),
grams AS (
  SELECT tg.id, gi.gram_id, CAST(tg.id AS BIGINT) * 4294967296 + gi.gram_id AS text_gram
  FROM text_grams tg JOIN gram_ids gi ON gi.gram = tg.gram
),
sizes AS (SELECT id, COUNT(*) AS n FROM grams GROUP BY id),
shared AS (
  SELECT pa.a_id, pa.b_id, COUNT(*) AS n
  FROM (
    SELECT p.a_id, p.b_id, CAST(p.b_id AS BIGINT) * 4294967296 + g.gram_id AS wanted
    FROM text_pairs p JOIN grams g ON g.id = p.a_id
  ) pa
  JOIN grams gb ON gb.text_gram = pa.wanted
  GROUP BY pa.a_id, pa.b_id
),
text_similarity AS (
  SELECT
    p.a_id,
    p.b_id,
    CAST(COALESCE(s.n, 0) AS DOUBLE)
      / NULLIF(COALESCE(sa.n, 0) + COALESCE(sb.n, 0) - COALESCE(s.n, 0), 0) AS similarity
  FROM text_pairs p
  LEFT JOIN sizes sa ON sa.id = p.a_id
  LEFT JOIN sizes sb ON sb.id = p.b_id
  LEFT JOIN shared s ON s.a_id = p.a_id AND s.b_id = p.b_id
),
similarity AS (
  SELECT c.turn_id, c.gap_us, c.b_id AS next_text_id, ts.similarity
  FROM rephrase_candidates c
  LEFT JOIN text_similarity ts
    ON ts.a_id = LEAST(c.a_id, c.b_id) AND ts.b_id = GREATEST(c.a_id, c.b_id)
),
flagged AS (
  SELECT
    t.*,
    x.id AS text_id,
    s.similarity AS next_similarity,
    s.next_text_id AS next_text_id,
    CAST(s.gap_us AS DOUBLE) / 1000000 AS next_gap_s,
    CASE WHEN t.intent IS NULL THEN 1 ELSE 0 END AS not_recognized,
    CASE WHEN t.confidence < ${low_confidence} THEN 1 ELSE 0 END AS low_confidence,
    CASE WHEN s.similarity >= ${similarity}
              OR (s.gap_us <= ${quick_us} AND s.similarity >= ${quick_similarity}
                  AND (t.intent IS NULL OR t.confidence < ${low_confidence}))
              OR t.rephrase_reported = 1 THEN 1 ELSE 0 END
      AS rephrased
  FROM turns_with_feedback t
  LEFT JOIN texts x ON x.text = t.text
  LEFT JOIN similarity s ON s.turn_id = t.turn_id
)
SELECT
  turn_id,
  day,
  ts_us,
  user_id,
  session_id,
  text_id,
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
  next_text_id,
  next_similarity,
  next_gap_s
FROM flagged
