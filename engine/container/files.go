package container

// File is content the engine writes for the container and mounts read-only
// at Target: a secret or a config.
type File struct {
	Target  string `json:"target"`
	Content []byte `json:"content"`
	UID     int    `json:"uid,omitempty"`
	GID     int    `json:"gid,omitempty"`
	Mode    uint32 `json:"mode,omitempty"` // 0: 0444
}
