"""`consentry demo`: a gateway, its downstream systems and simulated contact-centre and web
traffic, so a newcomer sees consent enforced, transfers blocked and erasures completed
(docs/demo.md). It speaks to the gateway only through `consentry.client`."""
