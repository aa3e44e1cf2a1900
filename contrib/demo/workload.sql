-- contrib/demo/workload.sql - the sample workload of `make demo`, created on
-- the source only, in its own schema "demo" (not replicated).
--
--   CALL demo.workload(client, seconds)
--
-- commits one small transaction after another for `seconds`: new customers
-- and orders with items, order updates, deletes of orders with their items,
-- primary-key updates (a customer renumbered, order lines renumbered, two
-- lines swapping their keys through a temporary value), and updates of
-- the values of awkward types. Several clients run it at once; a
-- transaction that collides with another client's (a row gone, a key
-- taken, a deadlock) is rolled back and the loop goes on.

CREATE SCHEMA demo;

CREATE PROCEDURE demo.workload(client int, seconds float8)
LANGUAGE plpgsql AS $$
DECLARE
    stop   timestamptz := clock_timestamp() + make_interval(secs => seconds);
    i      int := 0;
    c      bigint;
    o      bigint;
    n      int;
    r      float8;
    failed int := 0;
    k      int;                 -- rows changed by the last statement
    moved  int := 0;            -- order items renumbered (key updates)
    swaps  int := 0;            -- pairs of lines that swapped keys
    renum  int := 0;            -- customers renumbered
    gone   int := 0;            -- orders cancelled (deleted with their items)
BEGIN
    WHILE clock_timestamp() < stop LOOP
        i := i + 1;
        r := random();
        BEGIN
            -- a new customer, and an order with 1 to 4 items for someone
            INSERT INTO public.customers (name, email, country)
            VALUES (format('Customer %s-%s', client, i),
                    format('c%s.%s.%s@example.com', client, i, md5(random()::text)),
                    (ARRAY['DE', 'FR', 'NL', 'SE', 'US', NULL])[1 + floor(random() * 6)::int])
            RETURNING id INTO c;
            SELECT id INTO c FROM public.customers
             WHERE id >= floor(random() * c) ORDER BY id LIMIT 1;
            INSERT INTO public.orders (customer_id) VALUES (c) RETURNING id INTO o;
            n := 1 + floor(random() * 4)::int;
            INSERT INTO public.order_items (order_id, line, sku, qty, price)
            SELECT o, g, 'SKU-' || (1000 + floor(random() * 9000)::int),
                   1 + floor(random() * 5)::int, round((random() * 100)::numeric, 2)
              FROM generate_series(1, n) g;
            UPDATE public.orders
               SET total = (SELECT sum(qty * price) FROM public.order_items WHERE order_id = o)
             WHERE id = o;

            -- pick an older order for the rest
            SELECT id INTO o FROM public.orders
             WHERE id >= floor(random() * o) ORDER BY id LIMIT 1;

            IF r < 0.40 THEN            -- it moves on
                UPDATE public.orders
                   SET status = CASE status WHEN 'new' THEN 'paid'
                                            WHEN 'paid' THEN 'shipped'
                                            ELSE status END
                 WHERE id = o;
            ELSIF r < 0.50 THEN         -- cancelled: gone with its items
                DELETE FROM public.order_items WHERE order_id = o;
                DELETE FROM public.orders WHERE id = o;
                GET DIAGNOSTICS k = ROW_COUNT;
                gone := gone + k;
            ELSIF r < 0.60 THEN         -- its lines renumbered: a key update per row
                UPDATE public.order_items SET line = line + 100 WHERE order_id = o;
                GET DIAGNOSTICS k = ROW_COUNT;
                moved := moved + k;
            ELSIF r < 0.70 THEN         -- two lines swap keys via a temporary value
                SELECT min(line), max(line) INTO n, c
                  FROM public.order_items WHERE order_id = o;
                IF n < c THEN
                    UPDATE public.order_items SET line = -1 WHERE order_id = o AND line = n;
                    UPDATE public.order_items SET line = n WHERE order_id = o AND line = c;
                    UPDATE public.order_items SET line = c WHERE order_id = o AND line = -1;
                    swaps := swaps + 1;
                END IF;
            ELSIF r < 0.75 THEN         -- a customer without orders gets a new id
                UPDATE public.customers SET id = id + 1000000000
                 WHERE id = (SELECT x.id FROM public.customers x
                              WHERE x.id < 1000000000 AND x.id % 7 = client
                                AND NOT EXISTS (SELECT FROM public.orders WHERE customer_id = x.id)
                              LIMIT 1);
                GET DIAGNOSTICS k = ROW_COUNT;
                renum := renum + k;
            ELSIF r < 0.80 THEN         -- or leaves
                DELETE FROM public.customers
                 WHERE id = (SELECT x.id FROM public.customers x
                              WHERE x.id % 7 = client
                                AND NOT EXISTS (SELECT FROM public.orders WHERE customer_id = x.id)
                              ORDER BY x.id DESC LIMIT 1);
            ELSE                        -- awkward values, inserted or changed
                INSERT INTO public.oddities AS t
                VALUES (floor(random() * 200)::int,
                        (ARRAY[1e-30, 12345678901234567890.5, 'NaN', -0.000001, 42])[1 + floor(random() * 5)::int]
                            * (1 + floor(random() * 3)),
                        jsonb_build_object('client', client, 'i', i, 'text', E'tab\there "quoted" \\ ünïcödé',
                                           'list', jsonb_build_array(1, 2.50, null, true)),
                        ARRAY['a b', 'c,d', NULL, '{braces}', E'new\nline'],
                        ARRAY[random(), -0.0, 'Infinity', 1e300],
                        clock_timestamp(),
                        make_interval(days => i, secs => random()),
                        decode(md5(random()::text) || '00ff5c0a', 'hex'),
                        (enum_range(NULL::public.order_status))[1 + floor(random() * 4)::int],
                        CASE WHEN random() < 0.2 THEN NULL ELSE repeat('x', i % 50) END)
                ON CONFLICT (id) DO UPDATE
                   SET amount = t.amount + 1,
                       attrs = t.attrs || jsonb_build_object('seen', i),
                       tags = t.tags || ('tag ' || i),
                       seen_at = excluded.seen_at,
                       raw = t.raw || '\x00'::bytea;
            END IF;
        EXCEPTION
            WHEN unique_violation OR foreign_key_violation OR deadlock_detected
                 OR serialization_failure OR check_violation THEN
                failed := failed + 1;
        END;
        COMMIT;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RAISE NOTICE 'client %: % transactions (% collided, rolled back); key updates: % lines renumbered, % swaps, % customers; % orders deleted',
        client, i, failed, moved, swaps, renum, gone;
END
$$;
