-- The channels of temp table analytics_users (analytics_users.sql), most sign-ups first.
SELECT channel FROM analytics_users GROUP BY channel ORDER BY count(*) DESC, channel;
