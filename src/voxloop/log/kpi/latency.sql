-- latency: request latency percentiles per model version, by the nearest-rank definition:
-- the p-th percentile of n values is the ceil(p * n)-th smallest (1-based). That is what
-- the SQL-standard PERCENTILE_DISC computes, in DuckDB and Spark alike (one sort per
-- group inside the aggregate: no window over the whole log).
SELECT
  model_version,
  COUNT(*) AS turns,
  CAST(PERCENTILE_DISC(0.50) WITHIN GROUP (ORDER BY latency_ms) AS DOUBLE) AS p50_ms,
  CAST(PERCENTILE_DISC(0.95) WITHIN GROUP (ORDER BY latency_ms) AS DOUBLE) AS p95_ms,
  CAST(PERCENTILE_DISC(0.99) WITHIN GROUP (ORDER BY latency_ms) AS DOUBLE) AS p99_ms,
  MAX(latency_ms) AS max_ms,
  AVG(latency_ms) AS mean_ms
FROM turn_facts
WHERE latency_ms IS NOT NULL
GROUP BY model_version
ORDER BY model_version
