-- hot_spots: the intents the model is least sure of — per top intent (its best guess),
-- how many turns were declined or below the confidence threshold; the ${top_k} with the
-- most turns that were either (a turn both declined and unsure counts once).
SELECT
  top_intent,
  MIN(domain) AS domain,
  COUNT(*) AS turns,
  CAST(SUM(not_recognized) AS BIGINT) AS not_recognized,
  CAST(SUM(low_confidence) AS BIGINT) AS low_confidence,
  CAST(SUM(CASE WHEN low_confidence = 1 OR not_recognized = 1 THEN 1 ELSE 0 END) AS BIGINT)
    AS declined_or_unsure,
  CAST(SUM(not_recognized) AS DOUBLE) / COUNT(*) AS not_recognized_rate,
  CAST(SUM(low_confidence) AS DOUBLE) / COUNT(*) AS low_confidence_rate,
  AVG(confidence) AS mean_confidence
FROM turn_facts
GROUP BY top_intent
HAVING SUM(low_confidence) + SUM(not_recognized) > 0
ORDER BY declined_or_unsure DESC, low_confidence DESC, not_recognized DESC, top_intent
LIMIT ${top_k}
