-- friction_examples: the ${examples} most recent rephrased turns, with what the user said
-- next, how soon and how similar (the declined ones first).
SELECT
  f.day,
  f.domain,
  a.text,
  f.intent,
  f.confidence,
  n.text AS next_text,
  f.next_gap_s,
  f.next_similarity,
  f.barge_in,
  f.abandoned,
  f.negative_feedback
FROM (
  SELECT *
  FROM turn_facts
  WHERE rephrased = 1
  ORDER BY not_recognized DESC, ts_us DESC, turn_id
  LIMIT ${examples}
) f
LEFT JOIN texts a ON a.id = f.text_id
LEFT JOIN texts n ON n.id = f.next_text_id
ORDER BY f.not_recognized DESC, f.ts_us DESC, f.turn_id
