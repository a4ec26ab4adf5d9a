-- rephrase_candidates: the pre-filter of the rephrase detector, materialised before
-- turn_facts. A turn is a candidate only when the same user's NEXT turn (LEAD over the
-- user's turns in time order: a window, not a self-join, so linear in the log) came
-- within ${window_s} s. Texts are lower-cased, padded with one space each side and cut
-- to their first ${max_chars} characters (a, b), ready for the trigram comparison.
WITH seq AS (
  SELECT
    turn_id,
    ts_us,
    text,
    LEAD(ts_us) OVER (PARTITION BY user_id ORDER BY ts_us, turn_id) AS next_ts_us,
    LEAD(text) OVER (PARTITION BY user_id ORDER BY ts_us, turn_id) AS next_text
  FROM turns
  WHERE user_id IS NOT NULL
)
SELECT
  turn_id,
  next_ts_us - ts_us AS gap_us,
  next_text,
  SUBSTRING(CONCAT(' ', LOWER(text), ' '), 1, ${max_chars}) AS a,
  SUBSTRING(CONCAT(' ', LOWER(next_text), ' '), 1, ${max_chars}) AS b
FROM seq
WHERE next_ts_us IS NOT NULL AND next_ts_us - ts_us <= ${window_us}
