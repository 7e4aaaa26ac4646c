"""LINE Messaging API channel (LINE公式アカウント) of the gateway.

- :mod:`bot.line.render`: the gateway's structured reply (``[{"text", "buttons"?, "custom"?}]``,
  the same one the web widget renders) → LINE message objects: text, quick replies, Flex Message
  procedure cards; at most 5 messages per reply.
- :mod:`bot.line.service`: signature check, de-duplication of redelivered events, asynchronous
  event handling (text, postback, follow, non-text), rate limiting, the reply call with retries.
- The HTTP endpoint ``POST /line/webhook`` is :mod:`bot.routers.line`.

Reference: LINE Developers, Messaging API reference
(https://developers.line.biz/en/reference/messaging-api/), used through line-bot-sdk v3.
"""
