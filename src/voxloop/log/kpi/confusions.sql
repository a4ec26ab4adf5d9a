-- confusions: among turns the model declined or was unsure of (low confidence), which two
-- intents it hesitated between (its best guess and the runner-up of the ranking); the
-- ${top_k} most frequent pairs. (A decline threshold above the low-confidence one declines
-- turns that are not low-confidence: they count too.)
SELECT
  top_intent,
  second_intent,
  COUNT(*) AS turns,
  CAST(SUM(not_recognized) AS BIGINT) AS not_recognized,
  AVG(confidence) AS mean_confidence
FROM turn_facts
WHERE low_confidence = 1 OR not_recognized = 1
GROUP BY top_intent, second_intent
ORDER BY turns DESC, top_intent, second_intent
LIMIT ${top_k}
