{{ audience_members('lapsed_90d_plus') }}
