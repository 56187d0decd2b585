DROP TABLE settings;
DROP TABLE objects;
DROP TABLE events;
DROP TABLE machines;
DROP TABLE tokens;
DROP TABLE users;
