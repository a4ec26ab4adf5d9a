-- confusions: among low-confidence turns, which two intents the model hesitated between
-- (its best guess and the runner-up of the ranking); the ${top_k} most frequent pairs.
SELECT
  top_intent,
  second_intent,
  COUNT(*) AS turns,
  CAST(SUM(not_recognized) AS BIGINT) AS not_recognized,
  AVG(confidence) AS mean_confidence
FROM turn_facts
WHERE low_confidence = 1
GROUP BY top_intent, second_intent
ORDER BY turns DESC, top_intent, second_intent
LIMIT ${top_k}
