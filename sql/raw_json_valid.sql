-- Whether each candidate repair (relation candidate_texts: i, t) is valid JSON, in candidate order.
SELECT json_valid(t) FROM candidate_texts ORDER BY i;
