DROP TABLE script_results;
DROP TABLE script_sets;
