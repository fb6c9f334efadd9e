{{ audience_members('cart_abandon_0_1d') }}
