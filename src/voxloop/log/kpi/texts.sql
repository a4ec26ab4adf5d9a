-- texts: one row per distinct utterance text of the turns, materialised first, with an
-- integer id. s is the form the rephrase detector compares: lower-cased, padded with one
-- space each side, cut to its first ${max_chars} characters. Assistant traffic repeats its
-- utterances — thousands of texts for millions of turns — so every later step that touches
-- each turn handles an integer id, and the lower-casing and trigrams run once per text.
SELECT
  text,
  SUBSTRING(CONCAT(' ', LOWER(text), ' '), 1, ${max_chars}) AS s,
  DENSE_RANK() OVER (ORDER BY text) AS id
FROM (SELECT DISTINCT text FROM turns) d
