-- daily: volume and defect rates per day and domain (the trend lines).
SELECT
  day,
  domain,
  COUNT(*) AS turns,
  ${rates}
FROM turn_facts
GROUP BY day, domain
ORDER BY day, domain
