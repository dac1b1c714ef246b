"""Storage Commitment Push Model SCP (PS3.4 Annex J): N-ACTION requests, their check against
the instance store, and the N-EVENT-REPORTs that answer them."""
