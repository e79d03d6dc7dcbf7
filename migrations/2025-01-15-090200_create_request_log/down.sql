DROP TABLE request_log;
DROP TYPE request_method;
