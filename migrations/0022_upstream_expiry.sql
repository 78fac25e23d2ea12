-- When the provider itself said the connection's consent had expired (a sync's consent_expired:
-- Open Banking Expired, Enable Banking EXPIRED, GoCardless EX), else null. Set with the expiry a
-- sync records, cleared when a journey stores a new grant (reauth, or a reconsent renewed at the
-- provider). While it is set, a connection whose adapter renews consent only at Mooring (Open
-- Banking tppConsent) is repaired by a reauth, never by a reconsent or PATCH (SPEC sections 5 and 6).
alter table connections add column upstream_expired_at timestamptz;
