-- Per 1-minute window, the 10 most viewed products (window Top-N over product_views_1m_windows).
-- Ties are broken by product_id so that the ranking is a function of the counts alone.
CREATE TEMPORARY VIEW top_products_1m AS
SELECT
  'top_products_1m' AS pk,
  DATE_FORMAT(window_start, $stamp) || '#' || LPAD(CAST(view_rank AS STRING), 2, '0') AS sk,
  'top_products_1m' AS metric,
  DATE_FORMAT(window_start, $stamp) AS window_start,
  DATE_FORMAT(window_end, $stamp) AS window_end,
  CAST(view_rank AS INT) AS `rank`,
  product_id,
  view_count
FROM (
  SELECT
    window_start,
    window_end,
    product_id,
    view_count,
    ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY view_count DESC, product_id ASC) AS view_rank
  FROM product_views_1m_windows
)
WHERE view_rank <= 10;
