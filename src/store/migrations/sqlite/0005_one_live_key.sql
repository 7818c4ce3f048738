-- At most one active and one standby signing key per algorithm. Instances starting at
-- the same moment on an empty database could each create a pair; with these indexes the
-- second pair's insert fails, and that instance uses the first one's keys instead.
--
-- Pairs an earlier race left behind: the newest active key stays active (it is the one
-- instances sign with); older active keys are retired and stay published for a day,
-- longer than any access token lives; extra standby keys, which never signed anything,
-- are removed. "A newer one exists" holds for every row but the newest, whichever order
-- the rows are visited in.
UPDATE signing_keys
   SET state = 'retired',
       retire_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000 + 86400000
 WHERE state = 'active'
   AND EXISTS (SELECT 1 FROM signing_keys k
                WHERE k.alg = signing_keys.alg AND k.state = 'active'
                  AND (k.created_at > signing_keys.created_at
                       OR (k.created_at = signing_keys.created_at AND k.kid > signing_keys.kid)));

DELETE FROM signing_keys
 WHERE state = 'standby'
   AND EXISTS (SELECT 1 FROM signing_keys k
                WHERE k.alg = signing_keys.alg AND k.state = 'standby'
                  AND (k.created_at > signing_keys.created_at
                       OR (k.created_at = signing_keys.created_at AND k.kid > signing_keys.kid)));

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE state = 'active';
CREATE UNIQUE INDEX signing_keys_one_standby ON signing_keys (alg) WHERE state = 'standby';
