-- hot_spots: the intents the model is least sure of — per top intent (its best guess),
-- how many turns were declined or below the confidence threshold; the worst ${top_k}.
SELECT
  top_intent,
  MIN(domain) AS domain,
  COUNT(*) AS turns,
  CAST(SUM(not_recognized) AS BIGINT) AS not_recognized,
  CAST(SUM(low_confidence) AS BIGINT) AS low_confidence,
  CAST(SUM(not_recognized) AS DOUBLE) / COUNT(*) AS not_recognized_rate,
  CAST(SUM(low_confidence) AS DOUBLE) / COUNT(*) AS low_confidence_rate,
  AVG(confidence) AS mean_confidence
FROM turn_facts
GROUP BY top_intent
HAVING SUM(low_confidence) + SUM(not_recognized) > 0
ORDER BY low_confidence DESC, not_recognized DESC, top_intent
LIMIT ${top_k}
