-- friction_examples: the ${examples} most recent rephrased turns, with what the user said
-- next, how soon and how similar (the declined ones first).
SELECT
  day,
  domain,
  text,
  intent,
  confidence,
  next_text,
  next_gap_s,
  next_similarity,
  barge_in,
  abandoned,
  negative_feedback
FROM turn_facts
WHERE rephrased = 1
ORDER BY not_recognized DESC, ts_us DESC, turn_id
LIMIT ${examples}
