-- rephrase_candidates: the pre-filter of the rephrase detector, materialised before
-- turn_facts. A turn is a candidate only when the same user's NEXT turn (LEAD over the
-- user's turns in time order: a window, not a self-join, so linear in the log) came
-- within ${window_s} s. a_id and b_id are the ids in texts.sql of the two texts.
WITH seq AS (
  SELECT
    t.turn_id,
    t.ts_us,
    x.id AS a_id,
    LEAD(t.ts_us) OVER (PARTITION BY t.user_id ORDER BY t.ts_us, t.turn_id) AS next_ts_us,
    LEAD(x.id) OVER (PARTITION BY t.user_id ORDER BY t.ts_us, t.turn_id) AS b_id
  FROM turns t
  JOIN texts x ON x.text = t.text
  WHERE t.user_id IS NOT NULL
)
SELECT turn_id, next_ts_us - ts_us AS gap_us, a_id, b_id
FROM seq
WHERE next_ts_us IS NOT NULL AND next_ts_us - ts_us <= ${window_us}
