"""The pages: the DPO dashboard and the customer privacy portal (templates, assets, handlers)."""
