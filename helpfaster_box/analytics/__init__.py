"""Analytics: summary, topic clustering, knowledge gaps."""
