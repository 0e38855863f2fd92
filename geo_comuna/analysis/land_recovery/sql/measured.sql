-- The distance (m, geodesic on the WGS 84 spheroid; 0 when they touch) from each of the
-- parcels %(parcels)s to the nearest of the roads paired with it in %(roads)s (as long: one
-- pair per position). A parcel no longer stored has no row.
SELECT u.parcel, min(ST_Distance(p.geom::geography, r.geom::geography)) AS distance_m
FROM unnest(%(parcels)s::integer[], %(roads)s::integer[]) AS u(parcel, road)
JOIN parcels p ON p.id = u.parcel
JOIN paths r ON r.id = u.road
GROUP BY u.parcel
