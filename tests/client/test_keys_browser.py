"""The client mints a browser key with its origins (API.md, Browser SDK)."""

from __future__ import annotations

import pytest

from consentry.client import Client, ConsentryAPIError


def test_a_browser_key_is_minted_with_its_origins(client: Client) -> None:
    made = client.api_keys.create("browser", "shop", origins=["https://shop.example.com"])
    assert made["origins"] == ["https://shop.example.com"]
    assert made["role"] == "browser"
    with pytest.raises(ConsentryAPIError) as refused:
        client.api_keys.create("browser", "shop")
    assert (refused.value.status, refused.value.code) == (422, "invalid_request")
