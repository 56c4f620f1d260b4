-- Whether each canonical user is a known user id (not an anonymous device).
SELECT user_key, bool_or(is_identified) AS identified FROM core.identities GROUP BY user_key;
