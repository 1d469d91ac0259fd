-- Names a stream may carry: quotes of every dialect, spaces, a semicolon, reserved words, mixed
-- case, non-ASCII.
CREATE TABLE `we"ird 'tab``le]` (
  `select` int NOT NULL,
  `Mixed Case` varchar(10) NOT NULL,
  `semi;colon -- x` text,
  `naïve "col"` decimal(5,2),
  `back\\slash` blob,
  PRIMARY KEY (`select`, `Mixed Case`)
);
