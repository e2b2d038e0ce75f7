-- Webhook fan-out leaves the request path: emit() stores only the event (in the caller's
-- transaction, as before) and the delivery dispatcher creates one delivery per subscribed
-- endpoint. Events written before this migration were fanned out when they were emitted.
ALTER TABLE webhook_events ADD COLUMN fanned_out BOOLEAN DEFAULT true;
