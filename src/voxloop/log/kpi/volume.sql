-- volume: turns per domain and intent ('(not recognized)' for declined turns), with the
-- intent's share of all turns and of its domain's.
SELECT
  domain,
  intent,
  COUNT(*) AS turns,
  CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER () AS share,
  CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER (PARTITION BY domain) AS domain_share
FROM turn_facts
GROUP BY domain, intent
ORDER BY domain, turns DESC, intent
