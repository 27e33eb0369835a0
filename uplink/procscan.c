/* /proc reading for the finders: see procscan.h. */
#include "procscan.h"

#include <string.h>

int
procscan_read(const char *proc_root, uint32_t pid, procscan_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->pid = pid;
    if (procfacts_cmdline(proc_root, pid, info->cmdline,
                          sizeof info->cmdline) != 0)
        return -1;   /* gone, or a kernel thread */
    procfacts_comm(proc_root, pid, info->comm, sizeof info->comm);
    /* Finders match the path of the binary, also after it was replaced
     * on disk. */
    if (procfacts_exe(proc_root, pid, info->exe, sizeof info->exe) == 0)
        procfacts_exe_undelete(info->exe);
    return 0;
}
