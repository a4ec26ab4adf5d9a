-- texts: one row per distinct utterance text of the turns, materialised first, with an
-- integer id. utterance is the text trimmed and lower-cased, the one way both engines agree
-- on: their LOWER differs in two characters only (capital dotted I: DuckDB "i", Spark "i"
-- plus a combining dot; final sigma: DuckDB "σ", Spark "ς"), so the dotted i becomes "i" and
-- every sigma "σ". s is the form the rephrase detector compares: the lower-cased text so
-- normalised, padded with one space each side, cut to its first ${max_chars} characters.
-- Assistant traffic repeats its utterances — thousands of texts for millions of turns — so
-- every later step that touches each turn handles an integer id, and the lower-casing and
-- trigrams run once per text.
SELECT
  text,
  SUBSTRING(CONCAT(' ', lowered, ' '), 1, ${max_chars}) AS s,
  TRIM(lowered) AS utterance,
  DENSE_RANK() OVER (ORDER BY text) AS id
FROM (
  SELECT text, REPLACE(REPLACE(LOWER(text), 'i̇', 'i'), 'ς', 'σ') AS lowered
  FROM (SELECT DISTINCT text FROM turns) d
) l
