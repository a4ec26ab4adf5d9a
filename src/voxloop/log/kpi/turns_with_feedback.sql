-- View turns_with_feedback: one row per turn, its feedback events folded into columns.
--   barge_in, abandoned    1 when a barge_in / abandonment event names the turn, else 0
--   rephrase_reported      1 when the client reported a rephrase of the turn, else 0
--   rating                 mean rating, on voxloop.schema.RATING_SCALE: [0, 1], 0 worst, 1 best
--                          (POST /v1/feedback refuses other values; a value outside [0, 1],
--                          only possible in files written by hand, is ignored)
--   task_success           1 / 0 from task_success events (0 if any says 0), NULL when none
--   negative_feedback      1 when a rating is below 0.5 (1 or 2 of 5 stars: 0.0 or 0.25)
--                          or a task_success event says 0, else 0
--   feedback_events        number of feedback events about the turn
SELECT
  t.*,
  COALESCE(f.barge_in, 0) AS barge_in,
  COALESCE(f.abandoned, 0) AS abandoned,
  COALESCE(f.rephrase_reported, 0) AS rephrase_reported,
  COALESCE(f.negative_feedback, 0) AS negative_feedback,
  f.rating AS rating,
  f.task_success AS task_success,
  COALESCE(f.feedback_events, 0) AS feedback_events
FROM turns t
LEFT JOIN (
  SELECT
    turn_id,
    MAX(CASE WHEN kind = 'barge_in' THEN 1 ELSE 0 END) AS barge_in,
    MAX(CASE WHEN kind = 'abandonment' THEN 1 ELSE 0 END) AS abandoned,
    MAX(CASE WHEN kind = 'rephrase' THEN 1 ELSE 0 END) AS rephrase_reported,
    MAX(CASE
          WHEN kind = 'rating' AND value >= 0 AND value < 0.5 THEN 1
          WHEN kind = 'task_success' AND value < 0.5 THEN 1
          ELSE 0 END) AS negative_feedback,
    AVG(CASE WHEN kind = 'rating' AND value >= 0 AND value <= 1 THEN value END) AS rating,
    MIN(CASE WHEN kind = 'task_success'
             THEN CASE WHEN value >= 0.5 THEN 1 ELSE 0 END END) AS task_success,
    COUNT(*) AS feedback_events
  FROM _feedback_for_turns
  GROUP BY turn_id
) f ON f.turn_id = t.turn_id
