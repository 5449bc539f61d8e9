-- Take backend 2 out: it gets no new statements; running ones finish.
SET OFFLINE 2;
SELECT * FROM backends;
