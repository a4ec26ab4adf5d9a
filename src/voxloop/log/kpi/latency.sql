-- latency: request latency percentiles per model version, by the nearest-rank definition:
-- the p-th percentile of n values is the ceil(p * n)-th smallest (1-based), which both
-- engines compute exactly from ROW_NUMBER (p is a DECIMAL literal, so p * n is exact).
WITH ranked AS (
  SELECT
    model_version,
    latency_ms,
    ROW_NUMBER() OVER (PARTITION BY model_version ORDER BY latency_ms) AS rn,
    COUNT(*) OVER (PARTITION BY model_version) AS n
  FROM turn_facts
  WHERE latency_ms IS NOT NULL
)
SELECT
  model_version,
  COUNT(*) AS turns,
  MIN(CASE WHEN rn >= CEIL(0.50 * n) THEN latency_ms END) AS p50_ms,
  MIN(CASE WHEN rn >= CEIL(0.95 * n) THEN latency_ms END) AS p95_ms,
  MIN(CASE WHEN rn >= CEIL(0.99 * n) THEN latency_ms END) AS p99_ms,
  MAX(latency_ms) AS max_ms,
  AVG(latency_ms) AS mean_ms
FROM ranked
GROUP BY model_version
ORDER BY model_version
