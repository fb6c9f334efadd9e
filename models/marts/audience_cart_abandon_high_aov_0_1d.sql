{{ audience_members('cart_abandon_high_aov_0_1d') }}
