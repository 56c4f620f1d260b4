-- The lines of relation all_lines that are not valid JSON, in file order: Python repairs or rejects them.
SELECT row_idx, source_file, source_line, raw FROM all_lines WHERE NOT json_valid(raw) ORDER BY row_idx;
