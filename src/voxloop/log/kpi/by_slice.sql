-- by_slice: every rate per value of the --by columns (default: domain), the largest first.
SELECT
  ${by},
  COUNT(*) AS turns,
  CAST(COUNT(*) AS DOUBLE) / SUM(COUNT(*)) OVER () AS share,
  ${rates}
FROM turn_facts
GROUP BY ${by}
ORDER BY turns DESC, ${by}
