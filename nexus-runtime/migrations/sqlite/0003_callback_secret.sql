-- The secret each operation's callback URL carries (URL-safe base64 text): the callback receiver
-- accepts a completion only with it. NULL for operations recorded before completion secrets.
ALTER TABLE caller_operations ADD COLUMN callback_secret TEXT;
