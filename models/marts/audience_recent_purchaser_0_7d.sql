{{ audience_members('recent_purchaser_0_7d') }}
